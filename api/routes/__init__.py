"""HTTP routes: thin, the logic lives in api/ modules below them."""
