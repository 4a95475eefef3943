"""One module per tab, each exposing `build(services)`."""
