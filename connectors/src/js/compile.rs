//! Compiling a package's modules to bytecode once, at load, and loading them into each
//! call's context; the resolver that lets a module import only its own package's files.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rquickjs::loader::{Loader, Resolver};
use rquickjs::module::Declared;
use rquickjs::{Context, Ctx, Module, Object};

use super::convert;
use super::engine::{Engine, Pooled, WithTypedArrays};
use crate::error::{CallError, ErrorKind};
use crate::package::Package;

/// The names the sandbox's own modules are registered under: not relative paths, so no
/// package can import them.
const PRELUDE_NAME: &str = "durable:prelude";
const EXTRAS_NAME: &str = "durable:extras";

/// A package's modules as bytecode, by package path.
#[derive(Debug)]
pub(crate) struct Compiled {
    pub(crate) main: String,
    modules: HashMap<String, Vec<u8>>,
    /// Whether the package's source names a typed array (see [`WithTypedArrays`]).
    pub(crate) typed_arrays: bool,
    /// Whether a segment of this package's code ever used more CPU than
    /// `JsConfig::inline_segment_cpu`: its segments then run on the engine threads.
    heavy: AtomicBool,
}

impl Compiled {
    pub(crate) fn is_heavy(&self) -> bool {
        self.heavy.load(Ordering::Relaxed)
    }

    pub(crate) fn mark_heavy(&self) {
        self.heavy.store(true, Ordering::Relaxed);
    }
}

/// What the globals that [`WithTypedArrays`] adds contain: `Int8Array` … `BigUint64Array`,
/// `Uint8ClampedArray`, `ArrayBuffer`, `SharedArrayBuffer`, `DataView`, `Atomics`.
const TYPED_ARRAY_NAMES: [&str; 8] = [
    "8Array",
    "8ClampedArray",
    "16Array",
    "32Array",
    "64Array",
    "ArrayBuffer",
    "DataView",
    "Atomics",
];

/// Whether `source` may use a typed array: it names one, anywhere (code, a comment, a
/// string). Code that builds the name at run time (`globalThis["Uint" + "8Array"]`) finds
/// none unless the package names one somewhere.
fn names_typed_arrays(source: &str) -> bool {
    TYPED_ARRAY_NAMES.iter().any(|name| source.contains(name))
}

/// Whether a package file is a module: compiled at load, importable.
fn is_module(path: &str) -> bool {
    path.ends_with(".js") || path.ends_with(".mjs")
}

/// Compiles every module of `package` (so that a syntax error anywhere is reported now, with
/// its file), in a runtime of `engine`'s settings.
pub(crate) fn package(engine: &Engine, package: &Package) -> Result<Compiled, CallError> {
    let Some((main, _)) = package.script() else {
        return Err(CallError::new(
            ErrorKind::NotFound,
            format!(
                "`{}` has no JavaScript module (`main` in its manifest)",
                package.manifest().name
            ),
        ));
    };
    let sources: Vec<(&String, &String)> = package
        .files()
        .iter()
        .filter(|(p, _)| is_module(p))
        .collect();
    let paths = sources.iter().map(|(p, _)| (*p).clone()).collect();
    let compiler = compiler(engine, PackageModules::Stubs(Arc::new(paths)))?;
    let mut modules = HashMap::new();
    for &(path, source) in &sources {
        // Each in a context of its own: QuickJS resolves a module's imports as it compiles
        // it, and stand-ins (`PackageModules::Stubs`) keep every error with its own file.
        let bytecode = in_fresh_context(&compiler, |ctx| to_bytecode(ctx, path, source))?;
        modules.insert(path.clone(), bytecode);
    }
    Ok(Compiled {
        main: main.to_owned(),
        modules,
        typed_arrays: sources.iter().any(|(_, source)| names_typed_arrays(source)),
        heavy: AtomicBool::new(false),
    })
}

/// The sandbox's own modules, as bytecode.
#[derive(Debug)]
pub(crate) struct Sandbox {
    /// `prelude.js`: run first in every call.
    pub(crate) prelude: Vec<u8>,
    /// `extras.js`: loaded when a call first needs it.
    pub(crate) extras: Arc<[u8]>,
}

/// Compiles the sandbox's modules.
pub(crate) fn sandbox(engine: &Engine) -> Result<Sandbox, CallError> {
    let compiler = compiler(engine, PackageModules::None)?;
    let extras = include_str!("extras.js").replace("__KINDS__", &convert::kinds_json().to_string());
    Ok(Sandbox {
        prelude: in_fresh_context(&compiler, |ctx| {
            to_bytecode(ctx, PRELUDE_NAME, include_str!("prelude.js"))
        })?,
        extras: in_fresh_context(&compiler, |ctx| to_bytecode(ctx, EXTRAS_NAME, &extras))?.into(),
    })
}

/// Runs a module that imports nothing (the sandbox's own) to its end; its exports. A module
/// read from bytecode must have its imports resolved before it runs, which only an import
/// (`Module::import`) does: the package's modules are loaded that way.
pub(crate) fn evaluate<'js>(ctx: &Ctx<'js>, bytecode: &[u8]) -> rquickjs::Result<Object<'js>> {
    let (module, promise) = load(ctx, bytecode)?.eval()?;
    promise.finish::<()>()?;
    module.namespace()
}

/// A runtime to compile in, outside the pool.
fn compiler(engine: &Engine, modules: PackageModules) -> Result<Pooled, CallError> {
    let pooled = engine.fresh()?;
    pooled.rt.set_loader(modules.clone(), modules);
    Ok(pooled)
}

fn in_fresh_context<R>(
    compiler: &Pooled,
    compile: impl FnOnce(&Ctx<'_>) -> Result<R, CallError>,
) -> Result<R, CallError> {
    let context =
        Context::custom::<WithTypedArrays>(&compiler.rt).map_err(|e| convert::engine_error(&e))?;
    context.with(|ctx| compile(&ctx))
}

/// Compiles one module without running it.
fn to_bytecode(ctx: &Ctx<'_>, path: &str, source: &str) -> Result<Vec<u8>, CallError> {
    let declared = Module::declare(ctx.clone(), path, source).map_err(|err| {
        let detail = match err {
            rquickjs::Error::Exception => convert::describe(&ctx.catch()),
            other => other.to_string(),
        };
        CallError::new(
            ErrorKind::ScriptError,
            convert::clip(format!("`{path}` does not compile: {detail}")),
        )
    })?;
    declared
        .write(false)
        .map_err(|e| CallError::new(ErrorKind::ScriptError, format!("`{path}`: {e}")))
}

/// Loads module bytecode into the context.
#[allow(unsafe_code)]
pub(crate) fn load<'js>(
    ctx: &Ctx<'js>,
    bytecode: &[u8],
) -> rquickjs::Result<Module<'js, Declared>> {
    // SAFETY: `Module::load` is unsafe because QuickJS trusts the bytecode it reads. Every
    // buffer passed here was written by `Module::write` in this process, by this same
    // QuickJS build, from a module that compiled (`to_bytecode`), and is kept immutable
    // (`Compiled`, `Engine::prelude`): bytecode from outside never reaches this function.
    unsafe { Module::load(ctx.clone(), bytecode) }
}

/// Resolves and loads imports among a package's modules, and refuses everything else.
#[derive(Debug, Clone)]
pub(crate) enum PackageModules {
    /// Imports nothing: a pooled runtime between calls, the prelude's compiler.
    None,
    /// While compiling at load: the package's module paths, each loaded as an empty stand-in.
    Stubs(Arc<BTreeSet<String>>),
    /// The package's compiled modules, until `sealed` (see [`PackageModules::refuse_later`]).
    Compiled {
        modules: Arc<Compiled>,
        sealed: Arc<AtomicBool>,
    },
}

impl PackageModules {
    /// A call's loader of `compiled`, and the switch that closes it once the main module
    /// and its static imports are loaded.
    pub(crate) fn for_call(compiled: Arc<Compiled>) -> (Self, Arc<AtomicBool>) {
        let sealed = Arc::new(AtomicBool::new(false));
        let modules = Self::Compiled {
            modules: compiled,
            sealed: Arc::clone(&sealed),
        };
        (modules, sealed)
    }

    /// Whether imports are over: after the static ones, an `import()` is refused. QuickJS
    /// aborts the process when it collects a dynamic import whose module's top-level `await`
    /// never settled, and a script must not be able to do that.
    fn sealed(&self) -> bool {
        match self {
            Self::Compiled { sealed, .. } => sealed.load(Ordering::Relaxed),
            _ => false,
        }
    }

    fn has(&self, path: &str) -> bool {
        match self {
            Self::None => false,
            Self::Stubs(paths) => paths.contains(path),
            Self::Compiled { modules, .. } => modules.modules.contains_key(path),
        }
    }
}

impl Resolver for PackageModules {
    fn resolve<'js>(
        &mut self,
        _ctx: &Ctx<'js>,
        base: &str,
        name: &str,
    ) -> rquickjs::Result<String> {
        let refuse = |why: &str| Err(rquickjs::Error::new_resolving_message(base, name, why));
        if self.sealed() {
            return refuse(
                "`import()` is not available in a connector: import the package's files with \
                 `import` statements at the top of the module",
            );
        }
        if !(name.starts_with("./") || name.starts_with("../")) {
            return refuse(
                "a connector may import only the files of its own package, by a relative path \
                 such as `./lib.js` (there are no built-in modules: no file system, network or OS)",
            );
        }
        let Some(path) = join(base, name) else {
            return refuse("the path leads out of the package");
        };
        match self.has(&path) {
            true => Ok(path),
            false => refuse(&format!(
                "the package has no module `{path}` (a .js or .mjs file)"
            )),
        }
    }
}

impl Loader for PackageModules {
    fn load<'js>(&mut self, ctx: &Ctx<'js>, name: &str) -> rquickjs::Result<Module<'js, Declared>> {
        match self {
            Self::Compiled { modules, .. } if modules.modules.contains_key(name) => {
                load(ctx, &modules.modules[name])
            }
            Self::Stubs(paths) if paths.contains(name) => Module::declare(ctx.clone(), name, ""),
            _ => Err(rquickjs::Error::new_loading_message(
                name,
                "not a module of this package",
            )),
        }
    }
}

/// `name` relative to the directory of module `base`; `None` if it climbs out of the package.
fn join(base: &str, name: &str) -> Option<String> {
    let mut parts: Vec<&str> = base.split('/').collect();
    parts.pop();
    for segment in name.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_typed_arrays_by_name() {
        for source in [
            "new Uint8Array(4)",
            "Float64Array.from(x)",
            "new ArrayBuffer(8)",
            "new DataView(b)",
            "x instanceof Uint8ClampedArray",
            "BigInt64Array",
        ] {
            assert!(names_typed_arrays(source), "{source}");
        }
        assert!(!names_typed_arrays(
            "const a = new Array(8); Array.isArray(a)"
        ));
    }

    #[test]
    fn joins_relative_paths_within_the_package() {
        assert_eq!(join("index.js", "./lib.js").as_deref(), Some("lib.js"));
        assert_eq!(join("src/a.js", "./b.js").as_deref(), Some("src/b.js"));
        assert_eq!(join("src/a.js", "../c.js").as_deref(), Some("c.js"));
        assert_eq!(join("src/a.js", "./x/../y.js").as_deref(), Some("src/y.js"));
        assert_eq!(join("index.js", "../up.js"), None);
    }
}
