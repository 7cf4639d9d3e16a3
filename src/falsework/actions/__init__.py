"""falsework.actions"""
