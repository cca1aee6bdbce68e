"""The study presets (quick, default, long, conditioning, full, benchmarks, benchmarks-cpu) as
package data; read with importlib.resources."""
