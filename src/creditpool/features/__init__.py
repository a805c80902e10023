"""The feature catalog: what each AI feature costs."""
