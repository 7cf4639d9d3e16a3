"""falsework.web"""
