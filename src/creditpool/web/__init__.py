"""Server-rendered pages: the usage page, the credits page and the staff console."""
