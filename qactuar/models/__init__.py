"""Process models: how connections are spread over processes."""
