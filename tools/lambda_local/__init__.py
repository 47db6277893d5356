"""A local Lambda in front of moto: every AWS request passes through to moto unchanged, except `Invoke`, which runs
the invoked version's own code and layers, as moto stores them, on that version's runtime Python, through the real
runtime interface client (PyPI `awslambdaric`) against a Runtime API served here; and Lambda's control plane as
Lambda answers it (rate limits, update settling, revisions, pages, runtime versions), where moto answers at once
and in full.

    python -m lambda_local --moto http://127.0.0.1:MOTO --port PORT --state DIR   (tools/standins.py starts it)

Modules, one job each:
    proxy        the HTTP front: pass-through to moto, Invoke intercepted, code uploads recorded
    code_store   function and layer zips by CodeSha256, unpacked once (moto cannot hand them back)
    interpreters a Lambda runtime name -> this machine's CPython and the runtime interface client for it
    sandbox      the mount namespace that lays a version out as Lambda does (/var/task, /opt, the EFS mount)
    environment  one execution environment: its process, its Runtime API, init once, invocations one at a time
    invoke       one Invoke request: resolve the qualifier, pick or start an environment, answer as Lambda does
    fidelity     where moto answers otherwise than Lambda: an unchanged publish, the conflict error's name
    policies     resource policies per qualifier (AddPermission, GetPolicy, RemovePermission), where moto merges them
    answers      the front's own answers, in Lambda's JSON error shape
    operations   which Lambda operation a request is, for which function and Region (data plane or control plane)
    control_plane the control-plane stand-in: its settings, and the order of its checks before and after moto
    throttle     the account's request quotas as token buckets (GetFunction 100/s, GetPolicy 15/s, the rest 15/s)
    settle       updates of $LATEST InProgress for a while, and the conflicts meanwhile
    revisions    RevisionIds of $LATEST, versions and aliases, and their preconditions
    pages        pagination of the list calls at Lambda's page sizes
    runtimes     runtime versions per function version, and the runtime-management calls (Auto, Manual, ...)
    idle         published versions that go Inactive when idle, and the failed invoke that restores them
"""
