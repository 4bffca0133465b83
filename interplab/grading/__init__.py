"""Instructor side: build labs, make references, run submissions and grade them with nbgrader."""
