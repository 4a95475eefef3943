"""The Advanced tab (see studio/ui/tabs/ads.py for the shared builder)."""

from studio.ui.tabs.ads import builder

build = builder("advanced")
