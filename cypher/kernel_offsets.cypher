// Kernel weights by offset: the surviving weights of each convolution layer at every kernel position
// (ky, kx), with their mean |w|. Every kernel weight is one SYNAPSE between an input and an output
// channel; Linear synapses have no ky, kx and are left out. For one position only, e.g. the centre taps
// of a 3x3 convolution layer 3: MATCH ()-[s:SYNAPSE {layer: 3, ky: 1, kx: 1}]->() (cypher/schema.md).
//   netarchive query cypher -f cypher/kernel_offsets.cypher --param run=r1 --param level=0
:param run => 'r1';
:param level => 0;

MATCH (a:Neuron {run: $run, level: $level})-[s:SYNAPSE]->(:Neuron)
WHERE s.ky IS NOT NULL
RETURN s.layer AS layer, s.ky AS ky, s.kx AS kx, count(*) AS weights, avg(abs(s.w)) AS mean_abs_w
ORDER BY layer, ky, kx;
