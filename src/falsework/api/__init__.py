"""falsework.api"""
