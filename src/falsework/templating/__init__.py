"""falsework.templating: ``${{ }}`` templating in Jinja's sandbox, speaking Nunjucks.

Layer 1: knows no files, database or network. See docs/templates.md.
"""

from falsework.templating.renderer import MISSING, PLAIN, QUICK, Renderer, is_truthy

__all__ = ["MISSING", "PLAIN", "QUICK", "Renderer", "is_truthy"]
