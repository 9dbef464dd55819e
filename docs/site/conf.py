"""Sphinx configuration of the course website (``make site``; docs/site/build_site.py copies this file
into the staging folder it builds from). The notebooks are rendered by myst-nb from their committed
outputs: nothing is executed, nothing is loaded from the network at build or view time."""

project = "hrnet-edu"
html_title = "hrnet-edu: HRNet, written to be read, run and taught"
author = "the hrnet-edu authors"
copyright = "the hrnet-edu authors, MIT licence"

extensions = ["myst_nb", "sphinx_copybutton"]

# The notebooks' committed outputs are the page: never execute (nbval checks they are current).
nb_execution_mode = "off"
# Widget outputs are replaced by their static views (build_site.py); never load the widget manager's
# JavaScript from a CDN.
nb_ipywidgets_js = {}
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3

master_doc = "index"
exclude_patterns = ["_build", "_extra", "**.ipynb_checkpoints"]
# Originals of the notebooks and their jupytext pairs, published beside the pages (site/notebooks/).
html_extra_path = ["_extra"]
html_static_path = ["_static"]
html_css_files = ["site.css"]

# MathJax 3 from the local copy in _static/mathjax (SVG output: no web fonts to load).
mathjax_path = "mathjax/tex-svg.js"

html_theme = "sphinx_book_theme"
html_theme_options = {
    "home_page_in_toc": True,
    "show_navbar_depth": 1,
    # the source download is the box under each notebook's title (the committed notebook itself)
    "use_download_button": False,
    "use_fullscreen_button": False,
    "navigation_with_keys": False,
}
html_last_updated_fmt = None
html_show_sourcelink = False
html_copy_source = False  # the staged copies (with the box, without widget state) are not published
# Code cells: the copy button skips the ">>> " and "$ " prompts.
copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True
# The pages open in the light theme (the notebooks' figures are drawn on white); readers may switch.
# Without a default, the theme logs an error ("invalid theme mode") on a first visit.
html_context = {"default_mode": "light"}
# Search results without the snippet of each page: Sphinx fetches the pages for the snippets, which a
# browser refuses for pages opened from file://. The search itself (searchindex.js) works there.
html_show_search_summary = False
