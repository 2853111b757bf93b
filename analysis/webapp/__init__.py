"""The web app's parts: levers (what a user may change), run (the live model and its
reference run), frames (what each view shows, as tables), charts (Altair), views (the tabs)
and controls (the sidebar). `analysis/app.py` puts them on one page."""
