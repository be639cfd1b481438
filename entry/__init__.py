"""visbpp: bits per pixel of class-conditional AR image generators (packages: visbpp.core, visbpp.models, visbpp.tui)."""
