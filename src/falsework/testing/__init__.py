"""Testing templates: the cases beside each template (``tests/<case>/``),
rehearsed and compared with their snapshots (``falsework templates test``), and
a pytest plugin for teams that write asserts (``falsework.testing.plugin``)."""
