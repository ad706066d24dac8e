// Graph Data Science (Neo4j only; GDS is a server plugin): project one archived checkpoint into GDS's
// in-memory graph catalog as the graph $graph. Its neurons, isolated ones included, and its synapses,
// undirected, each with its weight w and its magnitude strength = |w|, typed by their weight layer
// (L0 for layer 0, L1, ...; a kernel weight is one synapse) so that an algorithm runs on the whole network
// or on one weight layer (relationshipTypes: ['L0']). Weightless CONNECTION edges are left out. Then run gds_wcc, gds_spanning_tree, gds_louvain (or any GDS algorithm on
// $graph); gds_drop frees the memory. A second projection under the same name fails: drop it first.
//   netarchive query cypher -f cypher/gds_project.cypher --param run=r1 --param level=0
:param run => 'r1';
:param level => 0;
:param graph => 'netarchive';

MATCH (a:Neuron {run: $run, level: $level})
OPTIONAL MATCH (a)-[s:SYNAPSE]->(b:Neuron)
WITH gds.graph.project($graph, a, b,
       {relationshipType: 'L' + toString(coalesce(s.layer, 0)), relationshipProperties: {w: s.w, strength: abs(s.w)}},
       {undirectedRelationshipTypes: ['*']}) AS g
RETURN g.graphName AS graph, g.nodeCount AS neurons, g.relationshipCount / 2 AS synapses;
