"""`make demo` / `python -m proxy.demo`: the real gateway in front of the fake upstream, a month of
history written through the gateway's own LogWriter, virtual keys made through /key/generate,
and live traffic from the openai SDK; every process it starts is stopped again."""
