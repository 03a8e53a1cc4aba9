import Testing
@testable import Neuron
@Test func builds() { #expect(Neuron.threads >= 1) }
