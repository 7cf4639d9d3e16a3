"""The action registry: built-ins plus the ``falsework.actions`` entry-point group."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from importlib.metadata import entry_points
from typing import Any

from falsework.actions.contract import Action
from falsework.errors import ConflictError, NotFoundError

ENTRY_POINT_GROUP = "falsework.actions"


class ActionRegistry:
    """Actions by id. ``default()`` is what a server or ``falsework run`` uses.

    ``settings`` are the action families' frozen settings (``SourcePolicy``,
    ``PublishPolicy``, ``EgressPolicy``…): every action registered here whose
    family declares one of their types gets it (see ``Action.settings_type``);
    the others keep their type's safe defaults. ``settings`` may also be a
    function giving them, called when the first action with settings is
    registered (``falsework run`` of a template whose actions take none builds
    no policy, nor imports their modules).

    ``lazy`` maps action ids to the module that defines each (the built-ins'
    ``falsework.actions.builtin.MODULES``): such an action's module is imported
    the first time it is asked for, with its whole family, so a process imports
    only the families its templates use."""

    def __init__(
        self,
        actions: Iterable[Action[Any]] = (),
        *,
        settings: Iterable[object] | Callable[[], Iterable[object]] = (),
        lazy: Mapping[str, str] | None = None,
    ) -> None:
        self._actions: dict[str, Action[Any]] = {}
        self._given = settings
        self._by_type: dict[type[Any], object] | None = None
        self._lazy: dict[str, str] = dict(lazy or {})
        self._loading = threading.Lock()
        for item in actions:
            self.register(item)

    @classmethod
    def builtin(
        cls, settings: Iterable[object] | Callable[[], Iterable[object]] = ()
    ) -> ActionRegistry:
        from falsework.actions.builtin import MODULES

        return cls(settings=settings, lazy=MODULES)

    @classmethod
    def default(
        cls, settings: Iterable[object] | Callable[[], Iterable[object]] = ()
    ) -> ActionRegistry:
        """Built-ins, then every action published under the entry-point group.

        An entry point may name one ``Action`` or an iterable of them.
        """
        registry = cls.builtin(settings)
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            loaded = ep.load()
            items = [loaded] if isinstance(loaded, Action) else list(loaded)
            for item in items:
                if not isinstance(item, Action):
                    raise TypeError(f"entry point {ep.name!r} gave {item!r}, not an Action")
                registry.register(item)
        return registry

    def register(self, item: Action[Any]) -> None:
        if item.id in self._actions or item.id in self._lazy:
            raise ConflictError(f"Action {item.id!r} is already registered")
        self._add(item)

    @property
    def _settings(self) -> dict[type[Any], object]:
        if self._by_type is None:
            given = self._given() if callable(self._given) else self._given
            self._by_type = {type(s): s for s in given}
        return self._by_type

    def _add(self, item: Action[Any]) -> None:
        if item.settings_type is not None and item.settings_type in self._settings:
            item = item.configured(self._settings[item.settings_type])
        self._actions[item.id] = item

    def _load(self, module_name: str) -> None:
        """Register the lazy actions ``module_name`` defines (its module imported)."""
        from falsework.actions.builtin import family

        with self._loading:
            wanted = [i for i, m in self._lazy.items() if m == module_name]
            if not wanted:  # another thread loaded it
                return
            found = family(module_name)
            for action_id in wanted:
                if action_id not in found:
                    raise LookupError(f"{module_name} defines no action {action_id!r}")
                self._add(found[action_id])
                del self._lazy[action_id]

    def get(self, action_id: str) -> Action[Any]:
        item = self._actions.get(action_id)
        if item is not None:
            return item
        module_name = self._lazy.get(action_id)
        if module_name is not None:
            self._load(module_name)
            return self._actions[action_id]
        import difflib  # only for this message

        hint = difflib.get_close_matches(action_id, self.ids(), n=1)
        more = f" (did you mean {hint[0]}?)" if hint else ""
        raise NotFoundError(f"Unknown action {action_id!r}{more}")

    def __contains__(self, action_id: object) -> bool:
        return action_id in self._actions or action_id in self._lazy

    def ids(self) -> list[str]:
        """Every id, no module imported."""
        return sorted({*self._actions, *self._lazy})

    def list(self) -> list[Action[Any]]:
        """Every action (every lazy family imported)."""
        return [self.get(i) for i in self.ids()]
