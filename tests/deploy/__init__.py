"""Deploy checks: Dockerfile, Tiltfile, manifests, dashboards, read offline."""
