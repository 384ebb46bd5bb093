"""Request and response bodies of the HTTP API (pydantic), one module per resource.

Routes import from here; nothing here knows about FastAPI routing or the app's state.
"""
