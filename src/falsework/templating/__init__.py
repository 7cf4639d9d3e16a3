"""falsework.templating"""
