"""`python -m proxy serve --workers N`: N gateway processes on one port, one supervisor.

  supervisor.py  the parent: prepares the databases, binds the port, starts and restarts the
                 workers, forwards SIGTERM/SIGINT and decides the exit status;
  worker.py      one worker: the same gateway as a single `serve`, told to stop by the parent;
  listen.py      the listening socket(s);
  logfile.py     gateway.log shared by every process (each worker's lines name it);
  metrics.py     /metrics of all workers from any of them (prometheus-client multiprocess);
  info.py        what a worker knows about its place (WorkerInfo, app[WORKER]).

The rate-limit counter the workers share is admin/store/sqlite_limits.py. A single `serve`
(the default, --workers 1) imports none of this and starts no extra process.
"""
