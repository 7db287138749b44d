"""The web app: server-rendered pages (Jinja2) with small vanilla JS modules, served at ``/``."""
