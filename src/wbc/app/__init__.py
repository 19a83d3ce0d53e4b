"""The Streamlit app: `wbc app` starts `main`, a thin page over the plain functions of the modules beside it."""
