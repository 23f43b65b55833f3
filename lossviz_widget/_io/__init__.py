"""Files: exports (images, HTML report, data files), the streaming log file, and reading them back.

Built on the core's frames and data; never imports the widget layer.
"""
