import Synchronization

/// What reflection finds on one module: its stored parameters, buffers and modules, under their
/// property names (`name.0` in arrays, `name.key` in dictionaries), in declaration order with a
/// superclass's properties first.
struct ReflectedParts {
    var parameters: [(name: String, parameter: Parameter)] = []
    var buffers: [(name: String, buffer: Buffer)] = []
    var modules: [(name: String, module: any Module)] = []
}

/// The reflection behind `Module`'s default parts and `checkParts()`.
///
/// `Mirror` is the only way to read a class's stored properties without a macro; building one per call
/// costs microseconds, next to milliseconds for a forward pass. What is cached per type is which
/// properties can hold parts at all, so plain values (sizes, flags, tensors, strings) are skipped
/// without a dynamic cast on later instances.
enum ModuleReflection {
    /// Per type and per class level (the type itself first), the labels whose values can never hold a part.
    private static let skipped = Mutex<[ObjectIdentifier: [Set<String>]]>([:])

    static func parts(of module: any Module) -> ReflectedParts {
        var levels: [Mirror] = []
        var mirror: Mirror? = Mirror(reflecting: module)
        while let m = mirror {
            levels.append(m)
            mirror = m.superclassMirror
        }
        let key = ObjectIdentifier(type(of: module))
        let known = skipped.withLock { $0[key] }
        var learned = [Set<String>](repeating: [], count: levels.count)
        var parts = ReflectedParts()
        // A superclass's stored properties come first, as they are initialised first.
        for (level, m) in levels.enumerated().reversed() {
            for child in m.children {
                guard let label = child.label, !label.hasPrefix("$__lazy_storage_$_") else { continue }
                if let known, known[level].contains(label) { continue }
                if !collect(child.value, name: label, into: &parts) && !canHoldParts(child.value) {
                    learned[level].insert(label)
                }
            }
        }
        if known == nil { skipped.withLock { $0[key] = learned } }
        return parts
    }

    /// Adds `value` to `parts` when it is a part (or an optional, array or dictionary of parts);
    /// returns whether it was one.
    private static func collect(_ value: Any, name: String, into parts: inout ReflectedParts) -> Bool {
        if let p = value as? Parameter { parts.parameters.append((name, p)); return true }
        if let b = value as? Buffer { parts.buffers.append((name, b)); return true }
        if let m = value as? any Module { parts.modules.append((name, m)); return true }
        let mirror = Mirror(reflecting: value)
        switch mirror.displayStyle {
        case .optional:
            guard let wrapped = mirror.children.first?.value else { return false }
            return collect(wrapped, name: name, into: &parts)
        case .collection:
            // Only arrays whose first element is a part are walked: a [Float] is not read element by element.
            guard let first = mirror.children.first?.value, isPart(first) else { return false }
            for (i, element) in mirror.children.enumerated() { _ = collect(element.value, name: "\(name).\(i)", into: &parts) }
            return true
        case .dictionary:
            var entries: [(String, Any)] = []
            for entry in mirror.children {
                let pair = Array(Mirror(reflecting: entry.value).children)
                guard pair.count == 2, let key = pair[0].value as? String, isPart(pair[1].value) else { return false }
                entries.append((key, pair[1].value))
            }
            for (key, element) in entries.sorted(by: { $0.0 < $1.0 }) { _ = collect(element, name: "\(name).\(key)", into: &parts) }
            return !entries.isEmpty
        default:
            return false
        }
    }

    private static func isPart(_ value: Any) -> Bool {
        if value is Parameter || value is Buffer || value is any Module { return true }
        let mirror = Mirror(reflecting: value)
        return mirror.displayStyle == .optional && (mirror.children.first.map { isPart($0.value) } ?? false)
    }

    /// Whether another instance's value of this property could hold a part: optionals (nil here),
    /// collections (empty here) and class references (an `any Module` existential or a subclass).
    private static func canHoldParts(_ value: Any) -> Bool {
        let style = Mirror(reflecting: value).displayStyle
        return style == .optional || style == .collection || style == .dictionary || style == .set || style == .class
    }

    /// The check behind `Module.checkParts()`, over `root` and every module it reaches.
    static func check(_ root: any Module) throws {
        var seen = Set<ObjectIdentifier>()
        try check(root, path: root.typeName, seen: &seen)
        var names = [String: ObjectIdentifier]()
        for (name, parameter) in root.namedParameters {
            let id = ObjectIdentifier(parameter)
            if let other = names[name], other != id {
                throw NeuronError.invalidArgument("\(root.typeName): two different parameters are both named '\(name)'")
            }
            names[name] = id
        }
    }

    private static func check(_ module: any Module, path: String, seen: inout Set<ObjectIdentifier>) throws {
        guard seen.insert(ObjectIdentifier(module)).inserted else { return }
        let reflected = parts(of: module)
        let declaredParameters = Set(module.namedParameters.map { ObjectIdentifier($0.parameter) })
        let declaredBuffers = Set(module.namedBuffers.map { ObjectIdentifier($0.buffer) })
        var reachedModules = Set(module.namedModules.map { ObjectIdentifier($0.module) })
        for inlined in module.inlinedModules {
            for (name, descendant) in inlined.namedModules {
                reachedModules.insert(ObjectIdentifier(descendant))
                let lost = descendant.namedParameters.filter { !declaredParameters.contains(ObjectIdentifier($0.parameter)) }
                if let (key, _) = lost.first {
                    throw NeuronError.invalidArgument("\(path) (\(type(of: module))) inlines \(descendant.typeName) but does not list its parameter '\(name.isEmpty ? key : name + "." + key)'")
                }
            }
        }
        let typeName = String(describing: type(of: module))
        let hint = "declare it in localParameters, localBuffers or children, or drop the hand-written list so reflection finds it"
        for (label, parameter) in reflected.parameters where !declaredParameters.contains(ObjectIdentifier(parameter)) {
            throw NeuronError.invalidArgument("\(typeName).\(label) is a Parameter that \(path) does not reach: it would get gradients but never be updated or saved; \(hint)")
        }
        for (label, buffer) in reflected.buffers where !declaredBuffers.contains(ObjectIdentifier(buffer)) {
            throw NeuronError.invalidArgument("\(typeName).\(label) is a Buffer that \(path) does not reach: it would never be saved or loaded; \(hint)")
        }
        for (label, child) in reflected.modules where !reachedModules.contains(ObjectIdentifier(child)) {
            throw NeuronError.invalidArgument("\(typeName).\(label) is a module (\(child.typeName)) that \(path) does not reach: its parameters would never be updated or saved and it would not follow train()/eval(); \(hint)")
        }
        for (name, child) in module.children { try check(child, path: path + "." + name, seen: &seen) }
        for inlined in module.inlinedModules { try check(inlined, path: path, seen: &seen) }
    }
}
