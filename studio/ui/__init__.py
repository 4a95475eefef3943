"""Gradio UI. The only package (with launch.py) that imports gradio."""
