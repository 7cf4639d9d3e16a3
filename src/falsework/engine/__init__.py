"""falsework.engine"""
