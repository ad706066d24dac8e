// The strongest synapses (largest |w|) leaving one layer of a checkpoint: layer 0 -> 1 is the first
// weight matrix. In Neo4j Browser, return a, s, b instead to see them as a graph.
//   netarchive query cypher -f cypher/strongest_synapses.cypher --param run=r1 --param level=0 --param layer=0
:param run => 'r1';
:param level => 0;
:param layer => 0;
:param limit => 25;

MATCH (a:Neuron {run: $run, level: $level, layer: $layer})-[s:SYNAPSE]->(b:Neuron)
RETURN a.`index` AS src, b.`index` AS dst, s.w AS w
ORDER BY abs(s.w) DESC
LIMIT $limit;
