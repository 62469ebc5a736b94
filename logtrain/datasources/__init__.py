"""Datasources of routes. Each adds and removes routes in the router under its
own source name; the route table is their union."""
