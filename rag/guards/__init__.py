"""Guards at the boundaries: what comes in (questions), what is retrieved (documents), what goes out."""
