"""Pure parsers of device-tool output (text in, readings out; no I/O, no device), tested on recordings.

One module per tool: ``tegrastats`` (Jetson's periodic status line), ``ina_sysfs`` (the INA3221/INA238
power-monitor trees in sysfs) and ``jetson_rails`` (which rail is a board's total input).
"""
