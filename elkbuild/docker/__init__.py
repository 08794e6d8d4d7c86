"""Docker: the engine (the user's or a private dockerd), the toolchain images, and the
container backend of the executor. Only api.py calls the Docker SDK."""
