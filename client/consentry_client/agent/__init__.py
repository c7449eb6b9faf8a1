"""The reference capture agent (``consentry-agent``): captures on X11 only what the current grant allows.

See ``cli.py`` for the command, ``agent.py`` for the rules it follows, and
``sink.py`` for where records go (the seam record encryption plugs into).
"""
