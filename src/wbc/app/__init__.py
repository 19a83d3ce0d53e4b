"""The Streamlit app: `wbc app` starts it; all logic is in `logic`."""
