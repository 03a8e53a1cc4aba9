import Neuron
print(Neuron.threadingSummary)
