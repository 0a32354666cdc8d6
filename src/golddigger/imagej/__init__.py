"""The Fiji/ImageJ bridge: Gold Digger's commands (Plugins > Gold Digger) in ImageJ.

Two ways to run them:

* **Python-hosted** (``golddigger imagej [--fiji PATH] [IMAGE...]``): ImageJ 1 or a local
  Fiji runs inside this Python process (`connect`, `session`); a command listener
  (`listener`) serves the menu commands (`commands`), converting ImageJ's images and ROIs
  (`convert`) and publishing the particles as ROIs and tables (`publish`). The model is
  loaded once.
* **Installed** (``golddigger install-fiji DIR``, `install`): ImageJ macros in
  ``DIR/plugins/Gold Digger/`` that save temporary copies and run
  ``golddigger imagej --call ...`` (`calls`), then load the results.

Both go through the same pure-Python layer (`options`, `backend`, `tables`, `analyze`), so
they give the same particles, ROI names and tables. The core package never imports this
one; nothing here imports Java until a function that needs it is called.
"""
