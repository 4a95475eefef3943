"""Pure-Python workflows: `run(request, services, progress, cancel) -> Result`. No gradio here."""
