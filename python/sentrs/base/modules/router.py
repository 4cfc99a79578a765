"""``Router``: different module pipelines for different tasks (queries vs documents), as the reference's Router.

The reference's legacy name ``Asym`` is the same class. A saved Router writes ``router_config.json`` (legacy Asym
folders have the same content in ``config.json``) with the module types, the route structure and the routing
parameters, and one sub-folder per module named ``{route}_{index}_{ClassName}``.
"""

from __future__ import annotations

import ast
import json
import logging
import os
from typing import Any, ClassVar

from torch import nn

from sentrs.base.formats import module_folder
from sentrs.base.modality import format_modality, infer_batch_modality
from sentrs.base.modules.module import InputModule, read_json_object

__all__ = ["Asym", "Router"]

logger = logging.getLogger(__name__)

RouteKey = tuple[str | None, str | tuple[str, ...] | None]


def _normalize_modality(modality: Any) -> Any:
    return tuple(sorted(modality)) if isinstance(modality, (tuple, list)) else modality


class Router(InputModule):
    """Sends inputs through one of several module lists, chosen by ``task`` (and ``modality``).

    Args:
        sub_modules: route name -> the modules applied in order on that route; the first is the route's input module.
        default_route: the route used when neither ``task`` nor ``modality`` picks one. With ``allow_empty_key`` and no
            default, the first route is the default.
        allow_empty_key: whether a missing task may fall back to the first route.
        route_mappings: ``(task, modality) -> route``; ``None`` in a key is a wildcard.

    Route resolution, first match wins: ``(task, modality)``, ``(task, None)``, ``(None, modality)``,
    ``(None, None)``, a route named like the task, a route named like the modality, ``default_route``.
    """

    config_keys: ClassVar[list[str]] = ["default_route", "allow_empty_key", "route_mappings"]
    config_file_name: ClassVar[str] = "router_config.json"
    forward_kwargs: ClassVar[set[str]] = {"task", "modality"}
    reference_type: ClassVar[str] = "sentence_transformers.base.modules.router.Router"

    def __init__(
        self,
        sub_modules: dict[str, list[nn.Module]],
        default_route: str | None = None,
        allow_empty_key: bool = True,
        route_mappings: dict[RouteKey, str] | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(sub_modules, dict) or not sub_modules:
            raise ValueError(f"sub_modules must be a non-empty dict of route name -> modules, got {sub_modules!r}")
        for name, modules in sub_modules.items():
            if not isinstance(name, str) or not name:
                raise ValueError(f"route names must be non-empty str, got {name!r}")
            if not isinstance(modules, (list, tuple, nn.Sequential)) or len(modules) == 0:
                raise ValueError(f"route {name!r} must hold a non-empty list of modules, got {modules!r}")
        if default_route is not None and default_route not in sub_modules:
            raise ValueError(f"default_route {default_route!r} is not one of the routes {list(sub_modules)}")
        mappings: dict[RouteKey, str] = {}
        for key, target in (route_mappings or {}).items():
            if not isinstance(key, tuple) or len(key) != 2:
                raise ValueError(f"route_mappings keys must be (task, modality) tuples, got {key!r}")
            if target not in sub_modules:
                raise ValueError(
                    f"route_mappings maps {key!r} to {target!r}, which is not one of the routes {list(sub_modules)}"
                )
            mappings[(key[0], _normalize_modality(key[1]))] = target
        self.sub_modules = nn.ModuleDict({name: nn.Sequential(*modules) for name, modules in sub_modules.items()})
        if allow_empty_key and default_route is None:
            default_route = next(iter(sub_modules))
        self.default_route = default_route
        self.allow_empty_key = allow_empty_key
        self.route_mappings = mappings

    @classmethod
    def for_query_document(
        cls,
        query_modules: list[nn.Module],
        document_modules: list[nn.Module],
        default_route: str | None = "document",
        allow_empty_key: bool = True,
    ) -> Router:
        """A Router with a ``query`` and a ``document`` route (``encode_query`` / ``encode_document`` pick them)."""
        return cls(
            {"query": query_modules, "document": document_modules},
            default_route=default_route,
            allow_empty_key=allow_empty_key,
        )

    # ------------------------------------------------------------------ routing
    def _routes_description(self) -> str:
        described = [f"task={name!r}" for name in self.sub_modules]
        for task, modality in self.route_mappings:
            shown = format_modality(modality) if modality is not None else None
            described.append(f"(task={task!r}, modality={shown!r})")
        return ", ".join(described)

    def resolve_route(self, task: str | None = None, modality: Any = None) -> str:
        """The route name for ``task`` and ``modality``; raises ValueError when none applies."""
        modality = _normalize_modality(modality)
        for key in ((task, modality), (task, None), (None, modality), (None, None)):
            if key in self.route_mappings:
                return self.route_mappings[key]
        if task and task in self.sub_modules:
            return task
        if isinstance(modality, str) and modality in self.sub_modules:
            return modality
        if task is not None:
            raise ValueError(f"No route found for task {task!r}. Available routes: {self._routes_description()}")
        if self.default_route is None:
            raise ValueError(
                f"Could not pick a route for task=None, modality={format_modality(modality) if modality else None!r}: "
                "this Router has no default route. "
                f"Pass task= to encode (for example encode_query / encode_document). Routes: "
                f"{self._routes_description()}"
            )
        return self.default_route

    def route_modules(self, task: str | None = None, modality: Any = None) -> list[nn.Module]:
        """The modules of the route for ``task`` and ``modality``, in order."""
        return list(self.sub_modules[self.resolve_route(task, modality)].children())

    def preprocess(
        self,
        inputs: list[Any],
        prompt: str | None = None,
        task: str | None = None,
        modality: Any = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Tokenizes with the input module of the resolved route; the features carry ``task`` and ``modality``."""
        if inputs and isinstance(inputs[0], dict) and task is None:
            # Legacy Asym input: [{"query": text}, ...]
            keys = {key for item in inputs for key in item}
            if len(keys) != 1:
                raise ValueError(f"dict inputs to a Router must all use one task key, got keys {sorted(keys)}")
            task = keys.pop()
            inputs = [item[task] for item in inputs]
        if modality is None and inputs:
            try:
                modality = infer_batch_modality(inputs, supported_modalities=self.modalities)
            except (ValueError, TypeError):
                modality = None  # the route's input module reports what it cannot read
        first = self.route_modules(task, modality)[0]
        if not isinstance(first, InputModule):
            raise TypeError(f"the first module of a route must be an input module, got {type(first).__name__}")
        features = first.preprocess(inputs, prompt=prompt, **kwargs)
        features["task"] = task
        if modality is not None:
            features["modality"] = modality
        return features

    def forward(
        self, features: dict[str, Any], task: str | None = None, modality: Any = None, **kwargs: Any
    ) -> dict[str, Any]:
        if task is None:
            task = features.get("task")
        if modality is None:
            modality = features.get("modality")
        kwargs["task"] = task
        kwargs["modality"] = modality
        for module in self.route_modules(task, modality):
            accepted = {k: v for k, v in kwargs.items() if k in getattr(module, "forward_kwargs", set())}
            features = module(features, **accepted)
        return features

    # ------------------------------------------------------------------ properties
    @property
    def modalities(self) -> list[Any]:
        """Every modality an input module of a route takes (sorted)."""
        found = {m for module in self._input_modules() for m in (getattr(module, "modalities", None) or ["text"])}
        return sorted(found, key=str)

    def _input_modules(self) -> list[nn.Module]:
        return [next(iter(route.children())) for route in self.sub_modules.values()]

    @property
    def tokenizer(self) -> Any:
        """The tokenizer of the first route that has one."""
        for module in self._input_modules():
            tokenizer = getattr(module, "tokenizer", None)
            if tokenizer is not None:
                return tokenizer
        return None

    @property
    def max_seq_length(self) -> int | None:
        """The largest ``max_seq_length`` of the routes' input modules."""
        lengths: set[int] = {
            n for n in (getattr(m, "max_seq_length", None) for m in self._input_modules()) if isinstance(n, int)
        }
        if len(lengths) > 1:
            logger.warning("The routes have different max_seq_length values %s; reporting the largest", lengths)
        return max(lengths) if lengths else None

    @max_seq_length.setter
    def max_seq_length(self, value: int | None) -> None:
        targets = [m for m in self._input_modules() if hasattr(m, "max_seq_length")]
        if not targets:
            logger.warning("No route of this Router has a max_seq_length to set")
        for module in targets:
            setattr(module, "max_seq_length", value)  # noqa: B010 - not every module declares it

    def get_embedding_dimension(self) -> int | None:
        dims = []
        for route in self.sub_modules.values():
            for module in reversed(list(route.children())):
                getter = getattr(module, "get_embedding_dimension", None)
                if getter is not None:
                    dims.append(getter())
                    break
        if len(set(dims)) > 1:
            logger.warning("The routes have different embedding dimensions %s; reporting the first", set(dims))
        return dims[0] if dims else None

    def get_config_dict(self) -> dict[str, Any]:
        return {
            "default_route": self.default_route,
            "allow_empty_key": self.allow_empty_key,
            "route_mappings": dict(self.route_mappings),
        }

    # ------------------------------------------------------------------ save / load
    def save(self, output_path: str, safe_serialization: bool = True) -> None:
        """Writes each module once into ``{route}_{index}_{ClassName}/`` and ``router_config.json``."""
        ids: dict[int, str] = {}
        types: dict[str, str] = {}
        structure: dict[str, list[str]] = {}
        for name, route in self.sub_modules.items():
            structure[name] = []
            for idx, module in enumerate(route.children()):
                module_id = ids.get(id(module))
                if module_id is None:
                    module_id = f"{name}_{idx}_{type(module).__name__}"
                    ids[id(module)] = module_id
                    types[module_id] = getattr(module, "reference_type", "") or (
                        f"{type(module).__module__}.{type(module).__name__}"
                    )
                    folder = os.path.join(output_path, module_id)
                    os.makedirs(folder, exist_ok=True)
                    module.save(folder, safe_serialization=safe_serialization)  # type: ignore[operator]
                structure[name].append(module_id)
        parameters = self.get_config_dict()
        parameters["route_mappings"] = {str(key): value for key, value in self.route_mappings.items()}
        with open(os.path.join(output_path, self.config_file_name), "w", encoding="utf-8") as f:
            json.dump({"types": types, "structure": structure, "parameters": parameters}, f, indent=4)

    @classmethod
    def load(cls, model_dir: str, trust_remote_code: bool = False, **hub_kwargs: Any) -> Router:
        from sentrs.base.registry import load_module

        config: dict[str, Any] = {}
        for name in (cls.config_file_name, "config.json"):  # config.json: legacy Asym folders
            path = os.path.join(model_dir, name)
            if os.path.exists(path):
                config = read_json_object(path)
                if "types" in config:
                    break
        if not isinstance(config.get("types"), dict) or not isinstance(config.get("structure"), dict):
            raise ValueError(
                f"{model_dir} has no valid router_config.json (an object with 'types' and 'structure'), "
                f"got keys {sorted(config)}"
            )
        loaded: dict[str, nn.Module] = {}
        for module_id, type_ref in config["types"].items():
            if (
                not isinstance(module_id, str)
                or not module_id
                or os.path.isabs(module_id)
                or ".." in module_id.replace("\\", "/").split("/")
            ):
                raise ValueError(f"Router module id must be a relative folder name without '..', got {module_id!r}")
            folder = module_folder(model_dir, module_id, f"Router module id in {model_dir}")
            loaded[module_id] = load_module(type_ref, folder, trust_remote_code=trust_remote_code, **hub_kwargs)
        routes: dict[str, list[nn.Module]] = {}
        for route, module_ids in config["structure"].items():
            missing = [m for m in module_ids if m not in loaded]
            if missing:
                raise ValueError(f"route {route!r} of {model_dir} names modules without a type: {missing}")
            routes[route] = [loaded[m] for m in module_ids]
        parameters = dict(config.get("parameters") or {})
        mappings: dict[RouteKey, str] = {}
        for key, value in (parameters.pop("route_mappings", None) or {}).items():
            try:
                parsed = ast.literal_eval(key)
            except (ValueError, SyntaxError):
                logger.warning("Skipping route mapping with an unreadable key %r", key)
                continue
            mappings[parsed] = value
        return cls(
            routes,
            default_route=parameters.get("default_route"),
            allow_empty_key=parameters.get("allow_empty_key", True),
            route_mappings=mappings,
        )

    def __repr__(self) -> str:
        return nn.Module.__repr__(self)

    def extra_repr(self) -> str:
        parts = [f"default_route={self.default_route!r}"] if self.default_route is not None else []
        if self.route_mappings:
            parts.append(f"route_mappings={self.route_mappings}")
        return ", ".join(parts)


Asym = Router
