"""Pure parsers of device-tool output: text in, plain records out, no I/O and no device.

Each parser reads by structure (section headings, table headers, ``key=value`` fields), keeps what it does
not know under ``unparsed`` where the format has such fields, never guesses a unit silently, and raises
:class:`hwnas.errors.InputError` naming the file and what was expected when the text is not the tool's
output. Runners (adb, subprocess) produce the text; profilers turn parsed records into measurements.

Modules: ``benchmark_model`` (TFLite), ``battery`` (Android), ``tegrastats`` (Jetson's status line),
``ina_sysfs`` (the INA3221/INA238 power-monitor trees in sysfs, scanned over a root directory) and
``jetson_rails`` (which rail is a board's total input, per generation).
"""
