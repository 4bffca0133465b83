"""Scripts that train the models shipped with the course."""
