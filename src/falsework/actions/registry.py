"""The action registry: built-ins plus the ``falsework.actions`` entry-point group."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
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
    the others keep their type's safe defaults."""

    def __init__(
        self, actions: Iterable[Action[Any]] = (), *, settings: Iterable[object] = ()
    ) -> None:
        self._actions: dict[str, Action[Any]] = {}
        self._settings: dict[type[Any], object] = {type(s): s for s in settings}
        for item in actions:
            self.register(item)

    @classmethod
    def builtin(cls, settings: Iterable[object] = ()) -> ActionRegistry:
        from falsework.actions.builtin import BUILTIN_ACTIONS

        return cls(BUILTIN_ACTIONS, settings=settings)

    @classmethod
    def default(cls, settings: Iterable[object] = ()) -> ActionRegistry:
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
        if item.id in self._actions:
            raise ConflictError(f"Action {item.id!r} is already registered")
        if item.settings_type is not None and item.settings_type in self._settings:
            item = item.configured(self._settings[item.settings_type])
        self._actions[item.id] = item

    def get(self, action_id: str) -> Action[Any]:
        try:
            return self._actions[action_id]
        except KeyError:
            hint = difflib.get_close_matches(action_id, self._actions, n=1)
            more = f" (did you mean {hint[0]}?)" if hint else ""
            raise NotFoundError(f"Unknown action {action_id!r}{more}") from None

    def __contains__(self, action_id: object) -> bool:
        return action_id in self._actions

    def ids(self) -> list[str]:
        return sorted(self._actions)

    def list(self) -> list[Action[Any]]:
        return [self._actions[i] for i in self.ids()]
