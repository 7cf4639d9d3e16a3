"""falsework.templates"""
