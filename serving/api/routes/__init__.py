"""One module per resource; each holds a thin `router`."""
