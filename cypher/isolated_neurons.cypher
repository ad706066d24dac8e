// Neurons left isolated by pruning (no synapse in or out), per neuron group. Pruning the last synapse of an
// input pixel or hidden unit removes it from the network in effect.
//   netarchive query cypher -f cypher/isolated_neurons.cypher --param run=r1 --param level=3
:param run => 'r1';
:param level => 0;

MATCH (n:Neuron {run: $run, level: $level})
OPTIONAL MATCH (n)-[s:SYNAPSE]-()
WITH n, count(s) AS degree
WHERE degree = 0
RETURN n.`group` AS `group`, count(n) AS isolated, collect(n.`index`)[0..20] AS first_indices
ORDER BY `group`;
