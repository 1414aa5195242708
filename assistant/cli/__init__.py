"""The ``banshi`` command line: one module per command group (``run``, ``dialogue``,
``kb``, ``progress``, ``desk``, ``voice``, ``outbox``, ``wechat``, ``analytics``) and ``main``, which
builds the parser from them. Commands handle arguments and printing only; the work
is done by the packages below (``api``, ``services``, ``dialogue``, ``knowledge``...)."""
