// The strongest synapses (largest |w|) of one weight layer of a checkpoint (forward index $layer: 0 is the
// first weight tensor), with the kernel offset ky, kx of a convolution's kernel weights (null for Linear).
// In Neo4j Browser, return a, s, b instead to see them as a graph.
//   netarchive query cypher -f cypher/strongest_synapses.cypher --param run=r1 --param level=0 --param layer=0
:param run => 'r1';
:param level => 0;
:param layer => 0;
:param limit => 25;

MATCH (a:Neuron {run: $run, level: $level})-[s:SYNAPSE {layer: $layer}]->(b:Neuron)
RETURN a.`index` AS src, b.`index` AS dst, s.ky AS ky, s.kx AS kx, s.w AS w
ORDER BY abs(s.w) DESC
LIMIT $limit;
