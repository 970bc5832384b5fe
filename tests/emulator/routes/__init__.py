"""Provider routes modules, discovered automatically.

Every module in this package (imported in sorted name order with
:mod:`pkgutil`) that defines ``register(emu: ProviderEmulator) -> None`` is
called when a :class:`~tests.emulator.ProviderEmulator` is created. One module
per provider, e.g. ``fal.py`` registering routes under the ``'fal'`` prefix.
"""
