"""HTTP layer: app factory, dependencies, errors, middleware and routes."""
