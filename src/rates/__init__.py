"""Ocean-freight rates: the rates API, batch ingestion and the tooling to run them."""
